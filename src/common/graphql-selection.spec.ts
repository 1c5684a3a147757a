import { Kind, parse, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { project, selectionOf } from './graphql-selection';

/** The resolve info of the root field of `query`, as graphql-js hands it to a subscription. */
function infoOf(query: string) {
  const doc = parse(query);
  const op = doc.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;
  const fragments = Object.fromEntries(
    doc.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  return { fieldNodes: [op.selectionSet.selections[0] as FieldNode], fragments };
}

const job = {
  id: 'j1',
  status: 'RUNNING',
  progress: 10,
  steps: [{ name: 'network', status: 'succeeded', startedAt: 'a' }],
  startedAt: new Date('2026-01-01T00:00:00Z'),
};

describe('selectionOf and project: what a subscriber sees of a value', () => {
  it('keeps the selected fields only, nested, through fragments and aliases', () => {
    const sel = selectionOf(
      infoOf(
        'subscription { jobUpdated(id: "x") { __typename p: progress ... on JobView { status } ...F } } fragment F on JobView { steps { name } }',
      ),
    );
    expect(project(job, sel)).toEqual({ progress: 10, status: 'RUNNING', steps: [{ name: 'network' }] });
  });

  it('tells two views apart only by what is selected', () => {
    const sel = selectionOf(infoOf('subscription { jobUpdated(id: "x") { status progress } }'));
    const nextStepStarted = { ...job, steps: [...job.steps, { name: 'database', status: 'running', startedAt: 'b' }] };
    expect(project(nextStepStarted, sel)).toEqual(project(job, sel));
    expect(project({ ...job, progress: 20 }, sel)).not.toEqual(project(job, sel));
  });

  it('cannot tell when a selected field is resolved apart from the value', () => {
    const sel = selectionOf(infoOf('subscription { siteUpdated(id: "x") { status containers { state } } }'));
    expect(project({ status: 'RUNNING' }, sel)).toBeUndefined();
    expect(project({ status: 'RUNNING', startedAt: null }, selectionOf(infoOf('subscription { s { startedAt } }')))).toEqual({
      startedAt: null,
    });
  });
});
