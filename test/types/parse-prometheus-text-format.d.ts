// The package ships no types; the metrics test reads its output as loosely typed families.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
