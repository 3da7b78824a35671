import { appConfig } from '../../tsup.shared.ts';

// The library is used as TypeScript source; the build is the `pnpm log` CLI.
export default appConfig(['src/cli.ts']);
