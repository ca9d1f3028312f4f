/**
 * Whether a provider can take work given the credentials set: its CLI needs none (a local model),
 * or one of the variables it accepts is set. The same rule on every platform.
 */
export function hasCredentials(needed: readonly string[], isSet: (name: string) => boolean): boolean {
  return needed.length === 0 || needed.some(isSet);
}
