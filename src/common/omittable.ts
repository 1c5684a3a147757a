import { ValidateIf } from 'class-validator';

/**
 * Like IsOptional, but only a missing field is skipped: an explicit null is validated (and
 * so refused) like any other value. For fields whose column cannot hold null.
 */
export const IsOmittable = () => ValidateIf((_object, value) => value !== undefined);
