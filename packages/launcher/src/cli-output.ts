import { type Command, InvalidArgumentError, Option } from 'commander';
import { packageVersion } from './output.ts';

/**
 * `-o, --output <text|json>` and its shorthand `--json`: with json, the command prints one JSON
 * document on stdout and nothing else there (what a person reads goes to stderr).
 */
export function outputOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('-o, --output <format>', 'text, or json: one JSON document on stdout')
        .argParser((value: string) => {
          if (value !== 'text' && value !== 'json')
            throw new InvalidArgumentError(`-o/--output must be text or json, got "${value}"`);
          return value;
        })
        .default('text'),
    )
    .option('--json', 'the same as -o json');
}

/** `--version` (and -V) on a commander program: prints the version of the package `moduleUrl` is in. */
export function withVersion(program: Command, moduleUrl: string): Command {
  return program.version(packageVersion(moduleUrl), '-V, --version', 'print the version and exit');
}
