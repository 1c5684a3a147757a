import { buildSchema, parse, validate } from 'graphql';
import { queryLimits } from './graphql-limits';

const schema = buildSchema(`
  type Site { id: ID! name: String! tenant: Tenant! sites(limit: Int): [Site!]! }
  type Tenant { id: ID! sites(limit: Int): [Site!]! }
  type Query { sites(limit: Int): [Site!]! site(id: ID!): Site }
`);

const errors = (query: string, depth = 4, cost = 1000) => validate(schema, parse(query), [queryLimits(depth, cost)]).map((e) => e.message);

describe('queryLimits', () => {
  it('accepts ordinary queries', () => {
    expect(errors('{ sites(limit: 50) { id name } }')).toEqual([]);
    expect(errors('{ __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }')).toEqual([]);
  });

  it('refuses a query nested too deep, also through fragments', () => {
    expect(errors('{ site(id: 1) { tenant { sites { tenant { sites { id } } } } } }')[0]).toMatch(/nested 6 levels/);
    expect(errors('fragment F on Site { tenant { sites { tenant { sites { id } } } } } { site(id: 1) { ...F } }')[0]).toMatch(/nested/);
  });

  it('refuses a query whose lists multiply beyond the cost', () => {
    expect(errors('{ sites(limit: 200) { sites(limit: 200) { id } } }', 10, 1000)[0]).toMatch(/cost/);
  });

  it('survives fragment cycles (reported by graphql itself)', () => {
    expect(() => errors('fragment A on Site { ...B } fragment B on Site { ...A } { site(id: 1) { ...A } }')).not.toThrow();
  });
});
