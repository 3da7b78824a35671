import { appConfig } from '../../tsup.shared.ts';

export default appConfig([
  'src/main.ts',
  'src/bench-e2e.ts',
  'src/bench-components.ts',
  'src/bench-scale.ts',
  'src/bench-durability.ts',
  'src/charts.ts',
  'src/demo-autoscale.ts',
  'src/trace-hops.ts',
]);
