import { SHARED_BUNDLE, type SharedBundle } from '../shared-path.ts';

const shared: Promise<SharedBundle> = import(/* webpackIgnore: true */ SHARED_BUNDLE);
// A cache request abandoned after its time limit must not hold the job open.
shared.then(({ runPost }) => runPost()).finally(() => process.exit());
