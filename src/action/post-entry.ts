import { run } from './post.ts';

// A cache request abandoned after its time limit must not hold the job open.
run().finally(() => process.exit());
