import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/** The fields a query selects below its root field: `true` for a leaf, a nested selection for an object. */
export type Selection = Map<string, Selection | true>;

/** What the subscriber asked for under the field being resolved (fragments included, aliases folded to field names). */
export function selectionOf(info: Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments'>): Selection {
  const out: Selection = new Map();
  for (const node of info.fieldNodes) if (node.selectionSet) collect(node.selectionSet, info.fragments, out);
  return out;
}

function collect(set: SelectionSetNode, fragments: GraphQLResolveInfo['fragments'], out: Selection): void {
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      const name = s.name.value;
      if (name === '__typename') continue;
      if (!s.selectionSet) {
        out.set(name, true);
        continue;
      }
      const existing = out.get(name);
      const inner: Selection = existing instanceof Map ? existing : new Map();
      collect(s.selectionSet, fragments, inner);
      out.set(name, inner);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      collect(s.selectionSet, fragments, out);
    } else {
      const fragment = fragments[s.name.value];
      if (fragment) collect(fragment.selectionSet, fragments, out);
    }
  }
}

/**
 * Only the selected part of a value: what the subscriber would see of it; undefined when a
 * selected field is not on the value (a field resolved on its own, such as live containers),
 * since then what the subscriber sees cannot be told from the value.
 */
export function project(value: unknown, selection: Selection): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => project(v, selection));
    return items.includes(undefined) ? undefined : items;
  }
  if (!value || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of selection) {
    if (!(key in value)) return undefined;
    const v = (value as Record<string, unknown>)[key];
    out[key] = sub === true || v === null ? v : project(v, sub);
    if (out[key] === undefined) return undefined;
  }
  return out;
}
