/**
 * `npm run bench -- <name>` runs bench/<name>.ts (default: gateway). The npm script pins this
 * process (the load generator) to core 1; each benchmark pins the process under test to core 0.
 * BENCH_ROUNDS and BENCH_SECONDS shorten a run for a quick look (the figures we report use the defaults: 5 rounds × 6 s, bench/lib/measure.ts).
 */
const name = process.argv[2] ?? 'gateway';
if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`no benchmark ${name}`);
await import(`./${name}.js`);
