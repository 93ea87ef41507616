/** `npm run docs`: regenerates the README configuration table and docs/errors.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import { errorsMarkdown, withConfigTable } from '../src/docs/generate.js';

writeFileSync('README.md', withConfigTable(readFileSync('README.md', 'utf8')));
writeFileSync('docs/errors.md', errorsMarkdown());
console.log('README.md configuration table and docs/errors.md regenerated');
