// The progress line for people: one line on stderr, rewritten as hosts answer, erased at
// the end so the table on stdout stays clean. Off for pipelines (stderr not a terminal)
// unless forced with --progress.
export interface ProgressSink {
  write(text: string): void;
  /** A terminal can rewrite the line; anything else gets one line per update. */
  terminal: boolean;
}

export const stderrSink: ProgressSink = {
  write: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
  terminal: Deno.stderr.isTerminal(),
};

export class Progress {
  #done = 0;
  #failed = 0;
  #last = "";

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly sink: ProgressSink | null,
  ) {}

  /** One host finished. */
  settle(name: string, ok: boolean): void {
    this.#done++;
    if (!ok) this.#failed++;
    const pending = this.total - this.#done;
    this.#show(
      `${this.label}: ${this.#done}/${this.total} answered, ${this.#failed} failed` +
        (pending > 0 ? `, ${pending} pending` : "") + ` (last: ${name} ${ok ? "ok" : "FAIL"})`,
    );
  }

  #show(line: string): void {
    if (!this.sink) return;
    this.#last = line;
    this.sink.write(this.sink.terminal ? `\r\x1b[2K${line}` : `${line}\n`);
  }

  /** Clears the line (terminal) before the results are printed. */
  end(): void {
    if (this.sink?.terminal && this.#last) this.sink.write("\r\x1b[2K");
  }
}
