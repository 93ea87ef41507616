import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

/**
 * Two validators: JSON bodies are checked strictly (a mistyped or unknown field is a 400 that
 * names it, nothing is coerced or silently dropped); query strings and path parameters arrive
 * as text, so those coerce ("10" → 10) and fill defaults.
 */
const strict = addFormats(new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false }));
const lenient = addFormats(new Ajv({ allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false }));

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const validate = (httpPart === 'body' ? strict : lenient).compile(schema as object);
  const invalid = (errors: unknown) => ({ error: Object.assign(new Error('validation'), { validation: errors, validationContext: httpPart }) });
  return (data: unknown) => {
    if (!validate(data)) return invalid(validate.errors);
    // No text the store keeps may hold a NUL: PostgreSQL refuses it (a 500), SQLite would cut it.
    const at = nulPath(data, '');
    return at === undefined ? { value: data } : invalid([{ instancePath: at, keyword: 'nul', params: {}, message: 'must not contain a NUL character' }]);
  };
};

/** The JSON pointer of the first string (or key) holding U+0000, if any. */
function nulPath(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulPath(value[i], `${path}/${i}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\u0000')) return path;
    const found = nulPath(item, `${path}/${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}
