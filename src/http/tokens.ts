import { createHash, timingSafeEqual } from "node:crypto";

/** `Authorization: Bearer <token>` → token; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m ? m[1] : undefined;
}

/**
 * Operator token check (spec §4). Tokens are compared as sha256 digests with `timingSafeEqual`,
 * so neither a token's content nor its length shows in the timing; every configured token is
 * compared, match or not.
 */
export class OperatorTokens {
  private readonly digests: Buffer[];
  constructor(tokens: readonly string[]) {
    this.digests = tokens.filter((t) => t !== "").map(digest);
  }

  /** false when no token is configured: the operator routes are then open (loopback listener). */
  get required(): boolean {
    return this.digests.length > 0;
  }

  verify(token: string | undefined): boolean {
    if (!this.required) return true;
    if (token === undefined || token === "") return false;
    const d = digest(token);
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(d, known) || ok;
    return ok;
  }
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}
