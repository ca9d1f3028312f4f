/**
 * Git's rules for a branch name (`git check-ref-format --branch`), without running git: what is
 * refused here would be refused by git later, after the task was queued and a worker set up.
 * Returns why the name is refused, or undefined when git would accept it.
 */
export function branchNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty';
  if (name.startsWith('-')) return 'begins with "-"';
  // git makes a branch "@", but reads "@" as HEAD wherever a revision is expected
  if (name === '@') return 'is "@" (HEAD)';
  if (name === 'HEAD') return 'is "HEAD"';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what git refuses
  if (/[\x00-\x20\x7f]/.test(name)) return 'holds a space or a control character';
  const bad = name.match(/[~^:?*[\\]/);
  if (bad) return `holds "${bad[0]}"`;
  if (name.includes('..')) return 'holds ".."';
  if (name.includes('@{')) return 'holds "@{"';
  if (name.startsWith('/') || name.endsWith('/')) return 'begins or ends with "/"';
  if (name.includes('//')) return 'holds "//"';
  if (name.endsWith('.')) return 'ends with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'has a part that begins with "."';
    if (part.endsWith('.lock')) return 'has a part that ends with ".lock"';
  }
  return undefined;
}
