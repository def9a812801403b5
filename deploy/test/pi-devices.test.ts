/**
 * The Pi unit's device policy and the udev rules, read as systemd and udev read them: which
 * device nodes the gateway may open (serial radios always, the RTL-SDR with the rtl_433
 * drop-in, radios plugged in after the start too), and the names multi-port adapters get.
 * No systemd as PID 1 and no udev daemon here: the policy is checked against the kernel's
 * device numbers, and the rules through an evaluator of the subset of udev's language they use.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runCommand, tempDir } from "@datalab/shared/testing";
import { loadGatewayConfig } from "@datalab/gateway";

const PI = fileURLToPath(new URL("../pi/", import.meta.url));
const unit = readFileSync(join(PI, "datalab-gateway.service"), "utf8");
const dropIn = readFileSync(join(PI, "datalab-gateway-rtl433.conf"), "utf8");
const rules = readFileSync(join(PI, "99-datalab-radio.rules"), "utf8");

/**
 * Device nodes with their kernel device numbers (Documentation/admin-guide/devices.txt) and the
 * driver name /proc/devices lists that major under, which `DeviceAllow=char-<name>` resolves.
 */
const NODES: Record<string, { major: number; driver: string; module?: string }> = {
  "/dev/ttyUSB0": { major: 188, driver: "ttyUSB", module: "usbserial" },
  "/dev/ttyUSB3": { major: 188, driver: "ttyUSB", module: "usbserial" },
  "/dev/ttyACM0": { major: 166, driver: "ttyACM", module: "cdc_acm" },
  "/dev/ttyAMA0": { major: 204, driver: "ttyAMA" },
  "/dev/ttyS0": { major: 4, driver: "ttyS" },
  // An RTL-SDR dongle as libusb opens it.
  "/dev/bus/usb/001/004": { major: 189, driver: "usb_device" },
};

const allowed = (text: string) => [...text.matchAll(/^DeviceAllow=char-(\S+) rw$/gm)].map((m) => m[1]!);

describe("the Pi unit's device policy", () => {
  it("admits /dev/ttyUSB*, /dev/ttyACM* and the Pi's UARTs, by driver, and nothing else", () => {
    expect(unit).toMatch(/^DevicePolicy=closed$/m);
    for (const node of ["/dev/ttyUSB0", "/dev/ttyUSB3", "/dev/ttyACM0", "/dev/ttyAMA0", "/dev/ttyS0"])
      expect(allowed(unit), node).toContain(NODES[node]!.driver);
    expect(allowed(unit).sort()).toEqual(["ttyACM", "ttyAMA", "ttyS", "ttyUSB"]);
    expect(unit).toMatch(/^SupplementaryGroups=dialout$/m);
  });

  it("admits radios plugged in after the start: the USB serial drivers load before the policy is built", () => {
    // char-<driver> resolves only if the driver registered its major when the unit starts.
    for (const { module } of Object.values(NODES)) {
      if (!module) continue;
      expect(unit).toMatch(new RegExp(`^Wants=.*\\bmodprobe@${module}\\.service\\b`, "m"));
      expect(unit).toMatch(new RegExp(`^After=.*\\bmodprobe@${module}\\.service\\b`, "m"));
    }
  });

  it("admits the RTL-SDR's USB node, in plugdev, only with the rtl_433 drop-in", () => {
    expect(allowed(unit)).not.toContain("usb_device");
    expect(allowed(dropIn)).toEqual([NODES["/dev/bus/usb/001/004"]!.driver]);
    expect(dropIn).toMatch(/^SupplementaryGroups=plugdev$/m);
    // The group the udev rules give RTL2832U dongles.
    expect(rules).toMatch(
      new RegExp(
        String.raw`^SUBSYSTEM=="usb", ENV\{DEVTYPE\}=="usb_device", ATTRS\{idVendor\}=="0bda", ` +
          String.raw`ATTRS\{idProduct\}=="2832\|2838", GROUP="plugdev", MODE="0660"$`,
        "m",
      ),
    );
  });

  it("passes systemd-analyze verify with the drop-in applied", async () => {
    const bin = spawnSync("sh", ["-c", "command -v systemd-analyze"], { encoding: "utf8" }).stdout.trim();
    if (!bin) throw new Error("systemd-analyze is not installed: apt-get install -y systemd");
    const dir = tempDir("datalab-unit-");
    // What install.sh fills in; `true` stands in for node, which verify requires to exist.
    const installed = unit.replaceAll("@NODE@", "/bin/true").replaceAll("@APP_DIR@", dir);
    const merged = installed.replace("\n[Install]", `\n${dropIn.split("[Service]")[1]!.trim()}\n\n[Install]`);
    expect(merged).toContain("DeviceAllow=char-usb_device rw");
    const file = join(dir, "datalab-gateway.service");
    writeFileSync(file, merged);
    const r = await runCommand(bin, ["verify", file]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("the Pi gateway's config", () => {
  it("leaves the readings stream to the hub: it never creates one with settings of its own", () => {
    const file = join(tempDir("datalab-pi-config-"), "gateway.json");
    writeFileSync(file, readFileSync(join(PI, "gateway.json"), "utf8").replace("@GATEWAY_ID@", "gw-1"));
    expect(loadGatewayConfig({ env: {}, file }).natsEnsureStream).toBe(false);
  });
});

describe("the udev rules", () => {
  const tty = (env: Record<string, string>) =>
    udevNames(rules, { ACTION: "add", SUBSYSTEM: "tty", ID_BUS: "usb", ...env });

  it("name each port of a multi-port adapter apart (FT4232H: four ports, one serial number)", () => {
    const ports = ["00", "01", "02", "03"].map((i) =>
      tty({ ID_VENDOR_ID: "0403", ID_MODEL_ID: "6011", ID_SERIAL_SHORT: "FT4X1", ID_USB_INTERFACE_NUM: i }),
    );
    expect(ports).toEqual([
      ["datalab-radio-0403-6011-FT4X1"],
      ["datalab-radio-0403-6011-FT4X1-if01"],
      ["datalab-radio-0403-6011-FT4X1-if02"],
      ["datalab-radio-0403-6011-FT4X1-if03"],
    ]);
  });

  it("keep the plain name for a single-port adapter, and name one without a serial number by its USB socket", () => {
    expect(
      tty({ ID_VENDOR_ID: "0403", ID_MODEL_ID: "6015", ID_SERIAL_SHORT: "DN01", ID_USB_INTERFACE_NUM: "00" }),
    ).toEqual(["datalab-radio-0403-6015-DN01"]);
    expect(
      tty({ ID_VENDOR_ID: "1a86", ID_MODEL_ID: "7523", ID_PATH_TAG: "platform-usb-0_1_2", ID_USB_INTERFACE_NUM: "00" }),
    ).toEqual(["datalab-radio-port-platform-usb-0_1_2"]);
    // Not a USB adapter (the Pi's own UART): no name.
    expect(udevNames(rules, { ACTION: "add", SUBSYSTEM: "tty", ID_BUS: "" })).toEqual([]);
  });
});

/**
 * The names SYMLINK+= gives a device with these properties, in the subset of udev's rule
 * language the file uses: `==`/`!=` on ENV{}, SUBSYSTEM and ACTION with `*`, `?` and `|`
 * patterns; ENV{}= assignments; GOTO to the end label; $env{} substitution. ATTRS{} (sysfs)
 * never matches these tty properties.
 */
function udevNames(text: string, device: Record<string, string>): string[] {
  const props = { ...device };
  const glob = (pat: string) =>
    new RegExp(
      `^(${pat
        .split("|")
        .map((p) =>
          p
            .replace(/[.+^${}()[\]\\]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, "."),
        )
        .join("|")})$`,
    );
  const subst = (v: string) => v.replace(/\$env\{(\w+)\}/g, (_, k: string) => props[k] ?? "");
  const names: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#") || line.startsWith("LABEL=")) continue;
    const parts = [...line.matchAll(/(\w+)(?:\{(\w+)\})?(==|!=|\+=|=)"([^"]*)"/g)];
    const matches = parts
      .filter((p) => p[3] === "==" || p[3] === "!=")
      .every((p) => {
        if (p[1] === "ATTRS") return false;
        const value = p[1] === "ENV" ? (props[p[2]!] ?? "") : (props[p[1]!] ?? "");
        return glob(p[4]!).test(value) === (p[3] === "==");
      });
    if (!matches) continue;
    if (parts.some((p) => p[1] === "GOTO")) return names;
    for (const p of parts) {
      if (p[1] === "ENV" && p[3] === "=") props[p[2]!] = subst(p[4]!);
      if (p[1] === "SYMLINK") names.push(subst(p[4]!));
    }
  }
  return names;
}
