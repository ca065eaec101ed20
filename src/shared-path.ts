/**
 * Where an entry bundle finds the shared one, relative to itself (dist/<entry>/index.js ->
 * dist/shared/index.js). A variable, and imported with webpackIgnore, so that the bundler leaves
 * the import to run time instead of copying the shared code into every entry.
 */
export const SHARED_BUNDLE = '../shared/index.js';
export type SharedBundle = typeof import('./shared-bundle.ts');
