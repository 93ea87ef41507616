import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashToken, randomToken } from '../../src/crypto/tokens.js';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import { ClientManager } from '../../src/modules/oauth2/management.js';
import { OAuth2Repository } from '../../src/modules/oauth2/repository.js';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { PRUNE_BATCH } from '../../src/storage/repositories/common.js';
import { createHarness, DIALECTS, type Harness } from '../helpers/harness.js';

/** More expired rows than one batch deletes, so the housekeeping loops more than once. */
const EXPIRED = 2 * PRUNE_BATCH + 7;
const LIVE = 5;

describe.each(DIALECTS)('housekeeping on %s', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(dialect);
  });
  afterEach(async () => h.close());

  it('deletes every expired OAuth 2.0 token, grant and code and sign-in session, in batches, and keeps the live ones', async () => {
    const alice = await h.services.users.create({ username: 'alice', password: 'alice-password-1' }, SYSTEM_ACTOR);
    const { client } = await new ClientManager(h.services, oauth2Of(h.services)).create({ name: 'Web app', redirectUris: ['https://app.example/cb'], scopes: ['READ'] }, SYSTEM_ACTOR);
    const now = h.clock.now();
    const rows = async (table: 'oauth2_tokens' | 'oauth2_grants' | 'oauth2_codes' | 'sessions') =>
      Number((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(h.services.store.db)).rows[0]!.n);
    await h.services.store.transaction(async (repos, trx) => {
      const repo = new OAuth2Repository(trx);
      for (let i = 0; i < EXPIRED + LIVE; i++) {
        // Expired ones a second ago (codes an hour and a second ago: they are kept an hour to recognise replays).
        const expiresAt = i < EXPIRED ? now - 1000 : now + 3_600_000;
        const grantId = randomUUID();
        const common = { linkId: client.linkId, userId: alice.id, clientId: client.clientId, scopes: ['READ'] as const, createdAt: now - 10_000 };
        await repo.insertGrant({ id: grantId, ...common, scopes: ['READ'], redirectUri: 'https://app.example/cb', refreshGeneration: 0, version: 0, lastUsedAt: now - 10_000, expiresAt });
        await repo.insertToken({ tokenHash: hashToken(randomToken('alat_')), ...common, scopes: ['READ'], kind: 'access', grantId, generation: 0, replacedAt: null, expiresAt });
        await repo.insertCode({
          codeHash: hashToken(randomToken('alac_')),
          ...common,
          scopes: ['READ'],
          redirectUri: 'https://app.example/cb',
          redirectUriSent: true,
          codeChallenge: null,
          codeChallengeMethod: null,
          grantId: randomUUID(),
          expiresAt: i < EXPIRED ? now - 3_601_000 : now + 60_000,
          consumedAt: null,
        });
        await repos.sessions.create({ idHash: hashToken(randomToken('alses_')), userId: alice.id, createdAt: now - 10_000, expiresAt, address: null, userAgent: null });
      }
    });
    const sessionsBefore = await rows('sessions');

    expect(await oauth2Of(h.services).prune()).toBe(3 * EXPIRED);
    expect([await rows('oauth2_tokens'), await rows('oauth2_grants'), await rows('oauth2_codes')]).toEqual([LIVE, LIVE, LIVE]);
    await h.services.sessions.pruneExpired();
    expect(await rows('sessions')).toBe(sessionsBefore - EXPIRED);
    // Nothing left to do.
    expect(await oauth2Of(h.services).prune()).toBe(0);
  });
});
