/** HTML-escaped text. Every interpolation in a page goes through `html`, which calls this. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Already-safe HTML, produced by `html` or `raw`. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export const raw = (value: string) => new SafeHtml(value);

/** A template tag that escapes every interpolated value unless it is SafeHtml (or an array of them). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, i) => {
    const render = (v: unknown): string => (v instanceof SafeHtml ? v.value : Array.isArray(v) ? v.map(render).join('') : v === false || v === null || v === undefined ? '' : escapeHtml(v));
    out += render(value) + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

const STYLE = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#172b4d}
main{max-width:44rem;margin:3rem auto;background:#fff;padding:2rem 2.5rem;border-radius:6px;box-shadow:0 1px 3px rgba(9,30,66,.2)}
h1{font-size:1.5rem;margin-top:0}h2{font-size:1.15rem;margin-top:2rem}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],input[type=date]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #c1c7d0;border-radius:4px;font:inherit}
button{margin-top:1rem;padding:.5rem 1.2rem;border:0;border-radius:4px;background:#0052cc;color:#fff;font:inherit;font-weight:600;cursor:pointer}
button.secondary{background:#e9ebee;color:#172b4d}button.danger{background:#de350b}
.error{background:#ffebe6;border-left:4px solid #de350b;padding:.6rem 1rem;margin:1rem 0}
.warning{background:#fffae6;border-left:4px solid #ffab00;padding:.6rem 1rem;margin:.5rem 0}
.ok{background:#e3fcef;border-left:4px solid #00875a;padding:.6rem 1rem;margin:1rem 0}
code.secret{display:block;padding:.6rem;background:#f4f5f7;word-break:break-all;font-size:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ebecf0;font-size:.9rem}
form.inline{display:inline}form.inline button{margin:0;padding:.2rem .6rem}
header{display:flex;justify-content:space-between;align-items:baseline}
`;

/** The page layout shared by sign-in, consent and account pages. */
export function page(title: string, body: SafeHtml, appName: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · ${escapeHtml(appName)}</title><style>${STYLE}</style></head>
<body><main>${body.value}</main></body></html>`;
}

/** Sends a page with headers that keep it out of frames and caches. */
export function sendPage(
  reply: { code(n: number): unknown; header(k: string, v: string): unknown; type(t: string): unknown; send(b: string): unknown },
  status: number,
  title: string,
  body: SafeHtml,
  appName: string,
): void {
  reply.code(status);
  reply.header('cache-control', 'no-store');
  reply.header('x-frame-options', 'DENY');
  reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'");
  reply.header('referrer-policy', 'no-referrer');
  reply.type('text/html; charset=utf-8');
  reply.send(page(title, body, appName));
}
