/** One entry of a tree walked for a directory transfer, on either side. */
export interface TreeEntry {
  /** `f` file, `d` folder, `l` symbolic link, `o` anything else (skipped and counted). */
  readonly kind: "f" | "d" | "l" | "o";
  /** Path relative to the tree's root, POSIX separators. */
  readonly path: string;
  readonly mode: number;
  readonly size: number;
  /** A link's target text. */
  readonly link?: string;
}
