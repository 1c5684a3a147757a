/**
 * Deterministic JSON (sorted keys), so equal specs hash equally. Its output is part of every
 * container's spec hash, so it must never change: a different string would replace every
 * container on upgrade. Written as loops that append to one string (no entry arrays, no
 * closures): the reconciler runs it for every site on every pass.
 */
export function stableStringify(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      // As Array.prototype.join: an element with no JSON form (undefined) adds nothing.
      const item = stableStringify(value[i]) as string | undefined;
      if (item !== undefined) out += item;
    }
    return `${out}]`;
  }
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    // The default sort compares UTF-16 code units, as `<` on strings does.
    const keys = Object.keys(record).sort();
    let out = '{';
    let first = true;
    for (const key of keys) {
      const v = record[key];
      if (v === undefined) continue;
      if (!first) out += ',';
      first = false;
      out += `${JSON.stringify(key)}:${stableStringify(v)}`;
    }
    return `${out}}`;
  }
  return JSON.stringify(value);
}
