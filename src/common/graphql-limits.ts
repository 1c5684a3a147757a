import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
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

/** How far past the depth limit a query is still measured (deeper ones are just "too deep"). */
const MEASURED_BEYOND = 64;

function measure(
  set: SelectionSetNode,
  depth: number,
  fragments: Map<string, FragmentDefinitionNode>,
  seen: Set<string>,
  maxDepth: number,
  frames = 0,
): Measure {
  // Well past the limit (fields or fragments in fragments) the answer is known: stop, so
  // that no nesting can overflow the stack.
  if (frames > maxDepth + MEASURED_BEYOND) return { depth: Math.max(depth, maxDepth + MEASURED_BEYOND + 1), cost: 0 };
  let result: Measure = { depth, cost: 0 };
  for (const sel of set.selections) {
    let child: Measure;
    if (sel.kind === Kind.FIELD) {
      if (sel.name.value.startsWith('__')) continue; // introspection is bounded by the schema
      const inner = sel.selectionSet
        ? measure(sel.selectionSet, depth + 1, fragments, seen, maxDepth, frames + 1)
        : { depth: depth + 1, cost: 0 };
      child = { depth: inner.depth, cost: 1 + multiplier(sel.arguments) * inner.cost };
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      child = measure(sel.selectionSet, depth, fragments, seen, maxDepth, frames + 1);
    } else {
      const fragment = fragments.get(sel.name.value);
      if (!fragment || seen.has(sel.name.value)) continue;
      child = measure(fragment.selectionSet, depth, fragments, new Set(seen).add(sel.name.value), maxDepth, frames + 1);
    }
    result = { depth: Math.max(result.depth, child.depth), cost: result.cost + child.cost };
  }
  return result;
}

function problemOf(depth: number, cost: number, maxDepth: number, maxCost: number): string | undefined {
  return depth > maxDepth + MEASURED_BEYOND
    ? `The query is nested (fields or fragments) more than ${maxDepth + MEASURED_BEYOND} levels deep; at most ${maxDepth} are allowed`
    : depth > maxDepth
      ? `The query is nested ${depth} levels deep; at most ${maxDepth} are allowed`
      : cost > maxCost
        ? `The query's estimated cost is ${cost}; at most ${maxCost} is allowed (lower the limits or ask for fewer fields)`
        : undefined;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  return new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
}

/** Refuses operations nested deeper than maxDepth or estimated to cost more than maxCost. */
export function queryLimits(maxDepth: number, maxCost: number): ValidationRule {
  return (context) => {
    const fragments = fragmentsOf(context.getDocument());
    return {
      OperationDefinition(node) {
        const { depth, cost } = measure(node.selectionSet, 0, fragments, new Set(), maxDepth);
        const problem = problemOf(depth, cost, maxDepth, maxCost);
        if (problem) context.reportError(new GraphQLError(problem, { nodes: [node], extensions: { code: ErrorCode.QUERY_TOO_COMPLEX } }));
      },
    };
  };
}

/** The same limits for a parsed document outside Apollo's validation (graphql-ws). */
export function queryLimitErrors(document: DocumentNode, maxDepth: number, maxCost: number): GraphQLError[] {
  const fragments = fragmentsOf(document);
  return document.definitions.flatMap((node) => {
    if (node.kind !== Kind.OPERATION_DEFINITION) return [];
    const { depth, cost } = measure(node.selectionSet, 0, fragments, new Set(), maxDepth);
    const problem = problemOf(depth, cost, maxDepth, maxCost);
    return problem ? [new GraphQLError(problem, { nodes: [node], extensions: { code: ErrorCode.QUERY_TOO_COMPLEX } })] : [];
  });
}
