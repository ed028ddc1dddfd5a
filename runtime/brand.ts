// instanceof that holds across two copies of the runtime (a loader or bundle that loads dlc/runtime twice): classes carry a Symbol.for brand by name.

/** The same symbol in every copy of the runtime, so a class from one copy recognises instances made by another. */
const BRAND = Symbol.for('dlc.runtime.class');

type Class = abstract new (...args: never[]) => unknown;

/** Marks `cls` (its prototype) with `name`: instances of it, from any copy of the runtime, carry the name in their prototype chain. */
export function brand(cls: Class, name: string): void {
  Object.defineProperty(cls.prototype, BRAND, { value: name });
}

/**
 * `value instanceof cls`, by brand: true when some prototype of `value` carries the brand `cls` has, so an
 * InputError thrown by another copy of the runtime is an InputError (and a DlcRuntimeError) here too. A class
 * with no brand of its own (a caller's subclass) is checked by the prototype chain, as instanceof does.
 */
export function isBranded(cls: Class, value: unknown): boolean {
  const own = Object.getOwnPropertyDescriptor(cls.prototype, BRAND)?.value as string | undefined;
  if (own === undefined) return Function.prototype[Symbol.hasInstance].call(cls, value);
  for (let p: unknown = value; (typeof p === 'object' && p !== null) || typeof p === 'function'; p = Object.getPrototypeOf(p)) {
    if (Object.getOwnPropertyDescriptor(p, BRAND)?.value === own) return true;
  }
  return false;
}
