import { GraphQLError, Kind, type FragmentDefinitionNode, type SelectionSetNode, type ValidationRule, type ValueNode } from 'graphql';
import { ErrorCode } from './errors';

interface Measure {
  depth: number;
  cost: number;
}

/** A list field's size: its literal `limit` argument, or the default page when it is a variable. */
function multiplier(args: readonly { name: { value: string }; value: ValueNode }[] | undefined): number {
  const limit = args?.find((a) => a.name.value === 'limit')?.value;
  if (!limit) return 1;
  return limit.kind === Kind.INT ? Math.max(1, Number(limit.value)) : 50;
}

function measure(set: SelectionSetNode, depth: number, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>): Measure {
  let result: Measure = { depth, cost: 0 };
  for (const sel of set.selections) {
    let child: Measure = { depth, cost: 0 };
    if (sel.kind === Kind.FIELD) {
      if (sel.name.value.startsWith('__')) continue; // introspection is bounded by the schema
      const inner = sel.selectionSet ? measure(sel.selectionSet, depth + 1, fragments, seen) : { depth: depth + 1, cost: 0 };
      child = { depth: inner.depth, cost: 1 + multiplier(sel.arguments) * inner.cost };
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      child = measure(sel.selectionSet, depth, fragments, seen);
    } else {
      const fragment = fragments.get(sel.name.value);
      if (!fragment || seen.has(sel.name.value)) continue;
      child = measure(fragment.selectionSet, depth, fragments, new Set(seen).add(sel.name.value));
    }
    result = { depth: Math.max(result.depth, child.depth), cost: result.cost + child.cost };
  }
  return result;
}

/** Refuses operations nested deeper than maxDepth or estimated to cost more than maxCost. */
export function queryLimits(maxDepth: number, maxCost: number): ValidationRule {
  return (context) => {
    const fragments = new Map(
      context
        .getDocument()
        .definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    );
    return {
      OperationDefinition(node) {
        const { depth, cost } = measure(node.selectionSet, 0, fragments, new Set());
        const problem =
          depth > maxDepth ? `The query is nested ${depth} levels deep; at most ${maxDepth} are allowed` : cost > maxCost ? `The query's estimated cost is ${cost}; at most ${maxCost} is allowed (lower the limits or ask for fewer fields)` : undefined;
        if (problem) context.reportError(new GraphQLError(problem, { nodes: [node], extensions: { code: ErrorCode.QUERY_TOO_COMPLEX } }));
      },
    };
  };
}
