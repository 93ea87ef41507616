import { describe, expect, it } from 'vitest';
import { addressKey } from '../../src/services/sign-in.js';

describe('the sign-in throttle’s address keys', () => {
  it('counts IPv4 per address (also IPv4-mapped) and IPv6 per /64', () => {
    expect(addressKey('203.0.113.7')).toBe('signin:addr:203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('signin:addr:203.0.113.7');
    const a = addressKey('2001:db8:1:2:aaaa::1');
    expect(a).toBe('signin:addr:2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe(a);
    expect(addressKey('2001:db8:1:3::1')).not.toBe(a);
    expect(addressKey('2001:db8::1')).toBe('signin:addr:2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('signin:addr:0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('signin:addr:fe80:0:0:0::/64');
  });
});
