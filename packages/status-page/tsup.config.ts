import { libConfig } from '../../tsup.shared.ts';

export default libConfig();
