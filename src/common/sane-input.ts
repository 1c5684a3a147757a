import { BerthError, ErrorCode } from './errors';

/** Deeper than any input Berth accepts (site env is two levels); bounds every walk over input. */
export const MAX_INPUT_DEPTH = 16;

/** Half of a UTF-16 pair without the other half: not Unicode text (validators throw on it). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Refuses input that no DTO can hold, before class-transformer walks it: text with NUL
 * characters (PostgreSQL cannot store them) or lone surrogates, and nesting deeper than
 * MAX_INPUT_DEPTH (class-transformer recurses without a bound and would overflow the stack).
 */
export function assertSaneInput(value: unknown, depth = 0): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Text must not contain NUL characters');
    if (LONE_SURROGATE.test(value))
      throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Text must be valid Unicode (no lone surrogate code points)');
    return;
  }
  if (value === null || typeof value !== 'object' || value instanceof Date) return;
  if (depth >= MAX_INPUT_DEPTH)
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `The input is nested more than ${MAX_INPUT_DEPTH} levels deep`);
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\0') || LONE_SURROGATE.test(key))
      throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Names must be valid Unicode without NUL characters');
    assertSaneInput(item, depth + 1);
  }
}
