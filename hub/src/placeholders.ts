import { ConfigError } from "@datalab/shared";

/** The mark the shipped manifests put in every secret an operator must replace. */
export const PLACEHOLDER = "CHANGE-ME";

/**
 * Refuse to start with a secret still holding a shipped placeholder: a placeholder that works
 * is a password everyone who read the manifests knows. Each offending variable is named.
 */
export function refusePlaceholders(secrets: Record<string, string | undefined>): void {
  const problems = Object.entries(secrets)
    .filter(([, v]) => v?.includes(PLACEHOLDER))
    .map(
      ([k]) =>
        `${k}: still holds the placeholder ${PLACEHOLDER}; replace it with a secret of your own (e.g. openssl rand -hex 24)`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
}
