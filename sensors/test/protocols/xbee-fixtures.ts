import { fixture } from "./helpers";

export interface XBeeFixtureRow {
  /** 1-based row number, as the fixture README counts them. */
  readonly row: number;
  readonly bytes: Buffer;
  readonly mode: 1 | 2;
  readonly frameType: string;
  readonly summary: string;
}

export function xbeeFixtureRows(): XBeeFixtureRow[] {
  const [header, ...lines] = fixture("xbee/frames.tsv").toString("utf8").trimEnd().split("\n");
  if (header?.split("\t").join(",") !== "hex,api_mode,frame_type,expected_summary,source") {
    throw new Error(`unexpected frames.tsv header: ${header}`);
  }
  return lines.map((line, i) => {
    const [hexText, mode, frameType, summary] = line.split("\t");
    return {
      row: i + 1,
      bytes: Buffer.from(hexText!, "hex"),
      mode: mode === "2" ? 2 : 1,
      frameType: frameType!,
      summary: summary!,
    };
  });
}

/**
 * Field values as the summary column states them, in either of its two spellings
 * (xbee-api's `remote64=` / `receiveOptions=` or the `src64=` / `options=0x..` of rows 18-27).
 */
export function summaryFields(summary: string) {
  const num = (text: string | undefined) =>
    text === undefined ? undefined : text.startsWith("0x") ? parseInt(text, 16) : Number(text);
  const remote64 = /(?:remote64|src64)=([0-9a-f]{16})/.exec(summary)?.[1];
  const remote16 = /(?:remote16|src16)=([0-9a-f]{4})/.exec(summary)?.[1];
  const options = num(/(?:receiveOptions|options)=(0x[0-9a-f]+|\d+)/.exec(summary)?.[1]);
  const dataHex = /data=([0-9a-f]+)(?:\s|$)/.exec(summary)?.[1];
  const dataText = /data="([^"]*)"/.exec(summary)?.[1];
  // xbee-api style: digitalSamples={DIO2:1,DIO3:0} analogSamples={AD1:644} (mV)
  const digitalBlock = /digitalSamples=\{([^}]*)\}/.exec(summary)?.[1];
  const analogBlock = /analogSamples=\{([^}]*)\}/.exec(summary)?.[1];
  const pairs = (block: string | undefined) =>
    block === undefined
      ? undefined
      : Object.fromEntries(
          block
            .split(",")
            .filter(Boolean)
            .map((p) => p.split(":"))
            .map(([k, v]) => [k!, Number(v)]),
        );
  // rows 18-19 style: DIO1=0 AD0=0x02b7 (raw)
  const digitalRaw = Object.fromEntries([...summary.matchAll(/\b(DIO\d+)=(\d)\b/g)].map((m) => [m[1]!, Number(m[2])]));
  const analogRaw = Object.fromEntries(
    [...summary.matchAll(/\b(AD\d)=0x([0-9a-f]{4})\b/g)].map((m) => [m[1]!, parseInt(m[2]!, 16)]),
  );
  return {
    remote64,
    remote16: remote16 === undefined ? undefined : parseInt(remote16, 16),
    options,
    data:
      dataHex !== undefined ? Buffer.from(dataHex, "hex") : dataText !== undefined ? Buffer.from(dataText) : undefined,
    digitalMv: pairs(digitalBlock),
    analogMv: pairs(analogBlock),
    digitalRaw,
    analogRaw,
  };
}
