/**
 * A lifetime in words for people ("5 years", "90 days", "1 hour"): the largest unit that
 * divides it into at least one, rounded down, so a page never promises more than the truth.
 */
export function durationInWords(seconds: number): string {
  const units: [string, number][] = [
    ['year', 365 * 86400],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
    ['second', 1],
  ];
  for (const [name, size] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) return `${n} ${name}${n === 1 ? '' : 's'}`;
  }
  return '0 seconds';
}
