/** `${env:NAME}`; NAME as POSIX shells allow it. */
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface Substitution {
  value: string;
  /** Every variable referenced, in order (present or not). */
  names: string[];
  /** The string was exactly one reference and nothing else. */
  whole: boolean;
  /** One message per missing variable or malformed reference. */
  problems: string[];
}

/**
 * Replaces every `${env:NAME}` in one string value. A variable that is not set is a problem (an
 * empty value is a value); so is a `${env:` that does not form a reference, because a typo there
 * would otherwise end up verbatim in a password or URL.
 */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv): Substitution {
  const names: string[] = [];
  const problems: string[] = [];
  const value = text.replace(ENV_REF, (_m, name: string) => {
    names.push(name);
    const v = env[name];
    if (v === undefined) {
      problems.push(`environment variable ${name} is not set (referenced as \${env:${name}})`);
      return "";
    }
    return v;
  });
  const rest = text.replace(ENV_REF, "");
  if (rest.includes("${env:")) {
    problems.push("malformed environment reference: write ${env:NAME} with NAME of A-Z a-z 0-9 _ (not starting with a digit)");
  }
  const whole = names.length === 1 && rest === "";
  return { value, names, whole, problems };
}
