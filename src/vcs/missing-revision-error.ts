/**
 * A revision upstream announced is not in the clone (yet): the pushlog can
 * run ahead of what a mirror served us. Transient: the retry pulls again.
 */
export class MissingRevisionError extends Error {
  override name = "MissingRevisionError";
  constructor(readonly revision: string) {
    super(`revision ${revision} is not in the clone`);
  }
}
