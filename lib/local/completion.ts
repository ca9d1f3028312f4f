import type { Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** One command of the tree: its path from the program (`schedule create`), what follows it. */
interface Node {
  path: string;
  description: string;
  subcommands: { name: string; description: string }[];
  options: { flags: string[]; description: string; takesValue: boolean; choices?: readonly string[] }[];
}

function optionsOf(cmd: Command): Node['options'] {
  const options: readonly Option[] = cmd.options;
  const own = options
    .filter((o) => !o.hidden)
    .map((o) => ({
      flags: [o.long, o.short].filter((f): f is string => Boolean(f)),
      description: o.description,
      takesValue: o.required || o.optional,
      choices: o.argChoices,
    }));
  return [...own, { flags: ['--help', '-h'], description: 'display help', takesValue: false }];
}

/** Every command of the program, depth first, the program itself (path '') first. */
export function commandTree(program: Command): Node[] {
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string) => {
    const subs = cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
    nodes.push({
      path,
      description: cmd.description(),
      subcommands: [
        ...subs.map((c) => ({ name: c.name(), description: c.description() })),
        // the values an argument may take (`completion <shell>`: bash, zsh, fish)
        ...cmd.registeredArguments.flatMap((a) =>
          (a.argChoices ?? []).map((v) => ({ name: v, description: a.description })),
        ),
      ],
      options: optionsOf(cmd),
    });
    for (const c of subs) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return nodes;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const words = (n: Node) => [...n.subcommands.map((s) => s.name), ...n.options.flatMap((o) => o.flags)];

function bash(name: string, nodes: Node[]): string {
  const fn = `_${name.replace(/\W/g, '_')}_completion`;
  const paths = nodes.filter((n) => n.path).map((n) => sh(n.path));
  const choices = nodes.flatMap((n) =>
    n.options
      .filter((o) => o.choices)
      .flatMap((o) =>
        o.flags.map((f) => `    ${sh(`${n.path}:${f}`)}) words=${sh((o.choices ?? []).join(' '))} ;;`),
      ),
  );
  const valued = nodes.flatMap((n) =>
    n.options
      .filter((o) => o.takesValue && !o.choices)
      .flatMap((o) => o.flags.map((f) => sh(`${n.path}:${f}`))),
  );
  return `# ${name} completion for bash: source <(${name} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmdpath="" next w i words
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    next="\${cmdpath:+$cmdpath }$w"
    case "$next" in
      ${paths.join('|')}) cmdpath="$next" ;;
    esac
  done
  case "$cmdpath:$prev" in
${choices.join('\n')}
    ${valued.length ? valued.join('|') : "''"}) COMPREPLY=(); return ;;
    *)
      case "$cmdpath" in
${nodes.map((n) => `        ${sh(n.path)}) words=${sh(words(n).join(' '))} ;;`).join('\n')}
      esac ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F ${fn} ${name}
`;
}

/** A `_describe` item: `name:description`, a colon in the name escaped. */
const zq = (name: string, description: string) => sh(`${name.replace(/:/g, '\\:')}:${description}`);

function zsh(name: string, nodes: Node[]): string {
  const fn = `_${name.replace(/\W/g, '_')}`;
  const paths = nodes.filter((n) => n.path).map((n) => sh(n.path));
  const choices = nodes.flatMap((n) =>
    n.options
      .filter((o) => o.choices)
      .flatMap((o) =>
        o.flags.map(
          (f) => `    (${sh(`${n.path}:${f}`)}) compadd -- ${(o.choices ?? []).map(sh).join(' ')}; return ;;`,
        ),
      ),
  );
  const valued = nodes.flatMap((n) =>
    n.options
      .filter((o) => o.takesValue && !o.choices)
      .flatMap((o) => o.flags.map((f) => sh(`${n.path}:${f}`))),
  );
  const items = (n: Node) =>
    [
      ...n.subcommands.map((s) => zq(s.name, s.description)),
      ...n.options.flatMap((o) => o.flags.map((f) => zq(f, o.description))),
    ].join(' ');
  return `#compdef ${name}
# ${name} completion for zsh: source <(${name} completion zsh)
${fn}() {
  local cmdpath="" next w i
  local -a items
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    next="\${cmdpath:+$cmdpath }$w"
    case "$next" in
      (${paths.join('|')}) cmdpath="$next" ;;
    esac
  done
  case "$cmdpath:\${words[CURRENT-1]}" in
${choices.join('\n')}
    (${valued.length ? valued.join('|') : "''"}) _files; return ;;
  esac
  case "$cmdpath" in
${nodes.map((n) => `    (${sh(n.path)}) items=(${items(n)}) ;;`).join('\n')}
  esac
  _describe -t commands ${sh(name)} items
}
compdef ${fn} ${name}
`;
}

function fish(name: string, nodes: Node[]): string {
  const fn = `__${name.replace(/\W/g, '_')}_at`;
  const paths = nodes.filter((n) => n.path).map((n) => sh(n.path));
  const lines: string[] = [];
  for (const n of nodes) {
    // command paths are words of letters, digits and '-': safe in single quotes
    const at = `-n "${fn} '${n.path}'"`;
    for (const s of n.subcommands)
      lines.push(`complete -c ${name} ${at} -a ${sh(s.name)} -d ${sh(s.description)}`);
    for (const o of n.options) {
      const flags = o.flags
        .map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`))
        .join(' ');
      const value = o.choices ? ` -x -a ${sh(o.choices.join(' '))}` : o.takesValue ? ' -r -F' : '';
      lines.push(`complete -c ${name} ${at} ${flags}${value} -d ${sh(o.description)}`);
    }
  }
  return `# ${name} completion for fish: ${name} completion fish | source
function ${fn} --description 'whether the command line is at this ${name} command'
  set -l cmdpath ''
  for w in (commandline -opc)[2..-1]
    set -l next (string trim -- "$cmdpath $w")
    contains -- $next ${paths.join(' ')}; and set cmdpath $next
  end
  test "$cmdpath" = "$argv[1]"
end
complete -c ${name} -f
${lines.join('\n')}
`;
}

/** A completion script for the shell, generated from the program's commands and options. */
export function completionScript(program: Command, shell: Shell): string {
  const nodes = commandTree(program);
  const name = program.name();
  return { bash, zsh, fish }[shell](name, nodes);
}
