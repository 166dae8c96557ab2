import type { Socket } from "node:net";

/** One Modbus TCP request, as MBAP frames it. */
export interface MbapRequest {
  /** transaction id, to be echoed in the reply */
  tid: number;
  unitId: number;
  /** function code and data; a view of the received bytes, valid during the callback */
  pdu: Buffer;
}

/**
 * Calls `onRequest` for each complete MBAP frame arriving on `sock`, in order; bytes of a frame
 * split across reads wait for the rest. With `strict`, a frame that cannot be Modbus TCP (protocol
 * id not 0, length outside 2..254) destroys the socket after `onBad`, as a real device drops a
 * connection that sends garbage; without it, such bytes are framed as they come. The one MBAP
 * reader of the test servers (modbus-servers.ts) and the bench's plant simulator.
 */
export function onMbapRequests(sock: Socket, onRequest: (req: MbapRequest) => void, opts: { strict?: boolean; onBad?: () => void } = {}): void {
  let rx: Buffer = Buffer.alloc(0);
  sock.on("data", (chunk: Buffer) => {
    rx = rx.length ? Buffer.concat([rx, chunk]) : chunk;
    while (rx.length >= 7) {
      const len = rx.readUInt16BE(4);
      if (opts.strict && (rx.readUInt16BE(2) !== 0 || len < 2 || len > 254)) {
        opts.onBad?.();
        sock.destroy();
        return;
      }
      if (rx.length < 6 + len) break;
      const req: MbapRequest = { tid: rx.readUInt16BE(0), unitId: rx[6]!, pdu: rx.subarray(7, 6 + len) };
      rx = rx.subarray(6 + len);
      onRequest(req);
    }
  });
}
