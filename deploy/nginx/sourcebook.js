// Sourcebook's nginx helpers (njs: Debian's libnginx-mod-http-js, bundled in the official
// nginx image), used by js_set in sourcebook.conf. Each does what the development server
// does in publishing/views.py, so both serve a page alike; tests/test_agent_serving.py
// sends the same requests to both and compares.
import fs from 'fs';

// The media ranges of an Accept header that accept something (q > 0), as Django's
// HttpRequest.accepted_types orders them: by quality, then specificity (type/subtype with
// parameters, type/subtype, type/*, */*), then their order in the header.
function acceptedRanges(header) {
    const ranges = [];
    header.split(',').forEach(function (token, order) {
        const parts = token.split(';');
        const type = parts[0].trim().toLowerCase();
        if (!type) {
            return;
        }
        let quality = 1;
        const params = {};
        let paramCount = 0;
        for (let i = 1; i < parts.length; i++) {
            const equals = parts[i].indexOf('=');
            const name = (equals < 0 ? parts[i] : parts[i].slice(0, equals)).trim().toLowerCase();
            const value = equals < 0 ? '' : parts[i].slice(equals + 1).trim().replace(/^"(.*)"$/, '$1');
            if (name === 'q') {
                const number = value === '' ? NaN : Number(value);
                quality = isNaN(number) || number < 0 || number > 1 ? 1 : Math.round(number * 1000) / 1000;
            } else if (name) {
                params[name] = value;
                paramCount++;
            }
        }
        const slash = type.indexOf('/');
        const main = slash < 0 ? type : type.slice(0, slash);
        const sub = slash < 0 ? '' : type.slice(slash + 1);
        const specificity = main === '*' ? 0 : sub === '*' ? 1 : paramCount ? 3 : 2;
        if (quality !== 0) {
            ranges.push({ main: main, sub: sub, params: params, paramCount: paramCount,
                          quality: quality, specificity: specificity, order: order });
        }
    });
    ranges.sort(function (a, b) {
        return b.quality - a.quality || b.specificity - a.specificity || a.order - b.order;
    });
    return ranges;
}

// The index in ``ranges`` of the range that decides on type/subtype (charset=utf-8, as we
// serve it): the most specific that matches (Django's HttpRequest.accepted_type), -1 if none.
function decidingRange(ranges, main, sub) {
    const precedence = ranges.map(function (range, index) {
        return { range: range, index: index };
    });
    precedence.sort(function (a, b) {
        return b.range.specificity - a.range.specificity || b.range.quality - a.range.quality
            || a.index - b.index;
    });
    for (let i = 0; i < precedence.length; i++) {
        const range = precedence[i].range;
        if (!range.main || !range.sub) {
            continue;
        }
        if (range.main !== main && range.main !== '*' || range.sub !== sub && range.sub !== '*') {
            continue;
        }
        // A range with parameters matches only ours: charset=utf-8.
        if (range.paramCount && !(range.paramCount === 1 && range.params.charset === 'utf-8')) {
            continue;
        }
        return precedence[i].index;
    }
    return -1;
}

// "1" when the client prefers a page's Markdown to its HTML (HTML wins a tie), as
// publishing.views.published_site decides with Django's HttpRequest.get_preferred_type.
function prefersMarkdown(r) {
    const header = r.headersIn['Accept'];
    const ranges = acceptedRanges(header === undefined ? '*/*' : header);
    const markdown = decidingRange(ranges, 'text', 'markdown');
    const html = decidingRange(ranges, 'text', 'html');
    return markdown >= 0 && (html < 0 || markdown < html) ? '1' : '';
}

// An estimate of a Markdown file's tokens: one per four ASCII characters, one per other
// character (publishing.views.markdown_tokens).
function markdownTokens(r) {
    if (!r.uri.endsWith('.md')) {
        return '';
    }
    let data;
    try {
        data = fs.readFileSync(r.variables.request_filename);
    } catch (e) {
        return '';
    }
    let ascii = 0;
    let others = 0;
    for (let i = 0; i < data.length; i++) {
        const byte = data[i];
        if (byte < 0x80) {
            ascii++;
        } else if (byte >= 0xc0) {
            others++;  // the first byte of a character encoded in several
        }
    }
    return String(Math.ceil(ascii / 4) + others);
}

// The brand's Content-Usage preference for the requested path, as the release's robots.txt
// states it (publishing.ai_use.content_usage_rules and content_usage_for).
function contentUsage(r) {
    let robots;
    try {
        robots = fs.readFileSync(r.variables.document_root + '/robots.txt', 'utf8');
    } catch (e) {
        return '';
    }
    const path = r.uri;
    let agents = [];
    let inRules = false;
    let best = '';
    let bestLength = -1;
    robots.split('\n').forEach(function (raw) {
        const line = raw.split('#')[0].trim();
        const colon = line.indexOf(':');
        if (colon < 0) {
            return;
        }
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'user-agent') {
            if (inRules) {
                agents = [];
                inRules = false;
            }
            agents.push(value);
            return;
        }
        inRules = true;
        if (name !== 'content-usage' || agents.indexOf('*') < 0) {
            return;
        }
        let rulePath = '';
        let rule = value;
        const space = value.indexOf(' ');
        if (value.startsWith('/') && space > 0) {
            rulePath = value.slice(0, space);
            rule = value.slice(space + 1).trim();
        }
        if (path.startsWith(rulePath) && rulePath.length > bestLength) {
            best = rule;
            bestLength = rulePath.length;
        }
    });
    return best;
}

export default { prefersMarkdown, markdownTokens, contentUsage };
