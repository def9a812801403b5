import { OutputError } from "./types";
import { StreamOutput } from "./stream";

/**
 * A serial port, opened with the `serialport` package (loaded only when a serial output is
 * configured). A pty from `socat -d -d pty,raw,echo=0,link=a pty,raw,echo=0,link=b` works
 * the same as a USB radio, which is how the tests run it.
 */
export async function openSerialOutput(path: string, baudRate: number): Promise<StreamOutput> {
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((err) =>
      err
        ? reject(new OutputError(`cannot open serial port ${path}: ${err.message}`, "unreachable", { cause: err }))
        : resolve(),
    ),
  );
  const close = async (): Promise<void> => {
    // end() hands every buffered write to the port ('finish'); drain() waits until the UART has
    // sent them (tcdrain). Closing before either loses the tail of the stream.
    await new Promise<void>((resolve) => port.end(() => resolve()));
    await new Promise<void>((resolve) => port.drain(() => resolve()));
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  };
  return new StreamOutput(port, `serial ${path} @${baudRate}`, close);
}
