/** MQTT topic filter matching (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * `sensors/#` also matches `sensors`: subscribing to both could make the broker deliver a
 * message twice. Drop a wildcard-free filter that another filter already covers.
 */
export function effectiveFilters(filters: readonly string[]): string[] {
  const unique = [...new Set(filters)];
  return unique.filter((f) => /[+#]/.test(f) || !unique.some((g) => g !== f && topicMatches(g, f)));
}
