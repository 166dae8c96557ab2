/**
 * Tag keys every driver shares, whatever its protocol: the runtime's normalize step applies them, and
 * a driver's tag config extends them with its addressing.
 */
export interface TagCommon {
  name: string;
  unit?: string;
  deadband?: number;
  /** default 1 */
  scale: number;
  /** default 0 */
  offset: number;
  /** default false */
  writable: boolean;
}
