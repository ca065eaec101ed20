import assert from 'node:assert/strict';
import { test } from 'node:test';

test('the tests run on Node 24, the runtime of runs.using: node24', () => {
  assert.equal(
    process.versions.node.split('.')[0],
    '24',
    `running on Node ${process.versions.node}`,
  );
});
