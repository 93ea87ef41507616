import type { Executor } from './common.js';

/** Installation-wide values (application id...). `getOrCreate` is race-free across instances. */
export interface MetaRepository {
  get(key: string): Promise<string | undefined>;
  /** Stores `value` unless the key exists, and answers whichever value is stored. */
  getOrCreate(key: string, value: string): Promise<string>;
  set(key: string, value: string): Promise<void>;
}

export class KyselyMetaRepository implements MetaRepository {
  constructor(private readonly db: Executor) {}

  async get(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async getOrCreate(key: string, value: string): Promise<string> {
    await this.db.insertInto('meta').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
    return (await this.get(key))!;
  }

  async set(key: string, value: string): Promise<void> {
    await this.db.insertInto('meta').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
  }
}
