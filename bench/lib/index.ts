export * from './processes.js';
export * from './measure.js';
