import { appConfig } from '../../tsup.app.ts';

// The library is used as TypeScript source; the build is the `paxos-aws` CLI.
export default appConfig(['src/cli.ts']);
