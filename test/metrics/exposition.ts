// Reads the Prometheus text exposition the agent serves, for assertions: samples by name and
// labels, and the HELP/TYPE of each metric family.
export interface Family {
  help: string;
  type: string;
}

export interface Exposition {
  families: Map<string, Family>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Exposition["samples"] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const f = families.get(meta[2]) ?? { help: "", type: "" };
      if (meta[1] === "HELP") f.help = meta[3];
      else f.type = meta[3];
      families.set(meta[2], f);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { families, samples };
}

/** The samples of `name` whose labels include `labels`. */
export function select(
  e: Exposition,
  name: string,
  labels: Record<string, string> = {},
): Exposition["samples"] {
  return e.samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

/** The one sample's value; throws when there is not exactly one. */
export function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = select(e, name, labels);
  if (found.length !== 1) {
    throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`);
  }
  return found[0].value;
}
