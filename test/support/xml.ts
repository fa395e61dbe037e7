// A small strict XML parser for the tests of generated SVG (no XML parser in node_modules):
// one root element, every element closed in order, attributes quoted and not repeated, no raw
// `<` in text or attributes, `&` only as one of the five entities or a character reference.
// Throws on the first error, with its offset; returns the tree so tests can query it.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** the element's own text (entities decoded), children's excluded */
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*/;
const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, at: number): string {
  return raw.replace(/&([^;]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new Error(`bare & at ${at}`);
    if (body in ENTITY) return ENTITY[body]!;
    const n = /^#x([0-9a-f]+)$/i.exec(body) ? parseInt(body.slice(2), 16) : /^#(\d+)$/.exec(body) ? Number(body.slice(1)) : NaN;
    if (!Number.isFinite(n)) throw new Error(`unknown entity &${body}; at ${at}`);
    return String.fromCodePoint(n);
  });
}

export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  while (i < text.length) {
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i);
      if (end < 0 || stack.length || root) throw new Error(`bad processing instruction at ${i}`);
      i = end + 2;
    } else if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) throw new Error(`unclosed comment at ${i}`);
      i = end + 3;
    } else if (text.startsWith('</', i)) {
      const m = NAME.exec(text.slice(i + 2));
      const top = stack.pop();
      if (!m || !top || top.name !== m[0]) throw new Error(`</${m?.[0]}> at ${i} closes ${top ? `<${top.name}>` : 'nothing'}`);
      i += 2 + m[0].length;
      skipSpace();
      if (text[i] !== '>') throw new Error(`bad end tag at ${i}`);
      i++;
    } else if (text[i] === '<') {
      const start = i;
      const m = NAME.exec(text.slice(i + 1));
      if (!m) throw new Error(`bad tag at ${i}`);
      if (!stack.length && root) throw new Error(`second root element at ${i}`);
      const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
      i += 1 + m[0].length;
      for (;;) {
        const before = i;
        skipSpace();
        if (text.startsWith('/>', i)) {
          i += 2;
          break;
        }
        if (text[i] === '>') {
          i++;
          stack.push(el);
          break;
        }
        if (i === before) throw new Error(`no space before an attribute at ${i}`);
        const a = NAME.exec(text.slice(i));
        if (!a) throw new Error(`bad attribute at ${i} in <${el.name}> at ${start}`);
        i += a[0].length;
        if (text[i] !== '=' || (text[i + 1] !== '"' && text[i + 1] !== "'")) throw new Error(`attribute ${a[0]} not quoted at ${i}`);
        const q = text[i + 1]!;
        const end = text.indexOf(q, i + 2);
        if (end < 0) throw new Error(`unclosed attribute ${a[0]} at ${i}`);
        const raw = text.slice(i + 2, end);
        if (raw.includes('<')) throw new Error(`< in attribute ${a[0]} at ${i}`);
        if (a[0] in el.attrs) throw new Error(`attribute ${a[0]} twice at ${i}`);
        el.attrs[a[0]] = decode(raw, i);
        i = end + 1;
      }
      const parent = stack[stack.length - (stack[stack.length - 1] === el ? 2 : 1)];
      if (parent) parent.children.push(el);
      else root = el;
    } else {
      const end = text.indexOf('<', i);
      const raw = text.slice(i, end < 0 ? text.length : end);
      if (raw.includes('>')) throw new Error(`raw > in text at ${i}`);
      const top = stack[stack.length - 1];
      if (!top) {
        if (raw.trim()) throw new Error(`text outside the root at ${i}`);
      } else top.text += decode(raw, i);
      i = end < 0 ? text.length : end;
    }
  }
  if (stack.length) throw new Error(`<${stack[stack.length - 1]!.name}> never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

/** Every element of the tree named `name` (depth first). */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = el.name === name ? [el] : [];
  for (const c of el.children) out.push(...findAll(c, name));
  return out;
}

/** The text of every <text> element. */
export function texts(el: XmlElement): string[] {
  return findAll(el, 'text').map((t) => t.text);
}
