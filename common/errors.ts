/**
 * What adapters throw so that activities can tell a failure no retry will cure (permanent) from one worth
 * retrying (transient). Adapters choose; activities turn these into Temporal failures in one place.
 */

/** A branch, tag or commit the source host does not have: permanent. */
export class RefNotFoundError extends Error {
  constructor(repo: string, ref: string) {
    super(`GitHub repository ${repo} has no branch, tag or commit "${ref}"`);
    this.name = 'RefNotFoundError';
  }
}

/** An HTTP answer that no retry will change (401, 403 without rate limit, 404, 422). */
export class PermanentHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'PermanentHttpError';
  }
}

/** A failure worth retrying: 408, 429, 5xx, a rate limit, a timeout or a network error. */
export class TransientHttpError extends Error {
  constructor(
    message: string,
    /** Undefined when no HTTP answer arrived. */
    readonly status?: number,
    /** How long the server asked us to wait, when it said so. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientHttpError';
  }
}

/**
 * The git remote refused a push by policy (branch protection, a repository rule, a pre-receive hook): pushing
 * again refuses again until a person changes the rule or the deploy identity's rights.
 */
export class PushRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PushRefusedError';
  }
}

/**
 * A proof of identity that does not hold (a bad signature, an expired or foreign token, a key that is not the
 * person's): the decision it came with is refused, and sending the same proof again refuses again.
 */
export class IdentityRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityRefusedError';
  }
}
