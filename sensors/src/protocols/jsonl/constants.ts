/**
 * Longest accepted JSON line. A microcontroller's JSON reading is well under 1 KiB; 8 KiB
 * leaves room for chatty firmware while bounding what one parser may buffer.
 */
export const JSONL_DEFAULT_MAX_LINE_LENGTH = 8192;
