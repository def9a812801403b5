import { MAX_SENSOR_ID_LENGTH, sanitizeIdPart } from "../common/names";
import { RTL433_SENSOR_ID_PREFIX } from "./constants";
import type { Rtl433Event } from "./frame";

/**
 * `rtl433-<model>[-<channel>][-<id>]`, e.g. `rtl433-Acurite-606TX-1-163`.
 * rtl_433 itself identifies a sensor by model + channel + id (its MQTT topic template
 * `[/model][/channel][/id]` does the same). Parts are sanitized ("Nexus Temperature" ->
 * "Nexus-Temperature"); absent parts are left out. Note that `id` of many cheap sensors is
 * a random number re-rolled at battery change, so a battery swap yields a new sensor id.
 */
export function rtl433SensorId(event: Rtl433Event): string {
  const parts = [RTL433_SENSOR_ID_PREFIX, sanitizeIdPart(event.model)];
  for (const key of ["channel", "id"] as const) {
    const value = event.fields[key];
    if (typeof value === "string" || typeof value === "number") {
      const part = sanitizeIdPart(String(value));
      if (part !== "") parts.push(part);
    }
  }
  return parts.join("-").slice(0, MAX_SENSOR_ID_LENGTH);
}
