import { appConfig } from '../../tsup.shared.ts';

// The library is used as TypeScript source; the build is the `anna-local` CLI.
export default appConfig(['src/server-cli.ts']);
