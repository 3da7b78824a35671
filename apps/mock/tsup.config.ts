import { appConfig } from '../../tsup.app.ts';

export default appConfig();
