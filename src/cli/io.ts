/** Where the CLI writes: one line (or block) at a time. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const line = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);

export const processIo: Io = {
  out: (text) => void process.stdout.write(line(text)),
  err: (text) => void process.stderr.write(line(text)),
};
