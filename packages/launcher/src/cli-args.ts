import { InvalidArgumentError } from 'commander';

/** A commander argument parser for the launcher CLIs: an integer >= `min`, or one line naming the flag. */
export function integerArgument(flag: string, min: number): (value: string) => number {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value) || Number(value) < min) {
      throw new InvalidArgumentError(`${flag} must be an integer >= ${min}, got "${value}"`);
    }
    return Number(value);
  };
}
