// Errors of the route layer: what went wrong, as a code a caller can act on.
export type RouteErrorCode =
  | "too-many-relays" // a record may list at most MAX_RECORD_RELAYS relays
  | "malformed" // bytes that do not decode as the frame, record or route advert they claim to be
  | "not-granted"; // [routes] advertises a subnet or the exit that the node's certificate does not grant

export class RouteError extends Error {
  constructor(readonly code: RouteErrorCode, message: string) {
    super(message);
    this.name = "RouteError";
  }
}
