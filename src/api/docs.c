/* GET /docs: one self-contained page (no outside scripts, styles or fonts) that fetches
 * /openapi.json and shows every route with its fields and responses. */
#include <string.h>

#include "api/api.h"

static const char docs_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Fluid Server API</title>\n"
    "<style>\n"
    "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\n"
    "header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}\n"
    "main{max-width:980px;margin:0 auto;padding:20px}\n"
    ".op{background:#fff;border:1px solid #d8dce3;border-radius:8px;margin:12px 0}\n"
    ".op summary{cursor:pointer;padding:10px 14px;display:flex;gap:12px;align-items:center}\n"
    ".m{font:600 12px monospace;color:#fff;border-radius:4px;padding:3px 8px;min-width:42px;"
    "text-align:center}\n"
    ".get{background:#2f7d4f}.post{background:#2b5fae}.path{font-family:monospace;"
    "font-weight:600}\n"
    ".body{padding:0 16px 14px}table{border-collapse:collapse;width:100%}\n"
    "td,th{border-bottom:1px solid #eceef2;padding:4px 8px;text-align:left;vertical-align:top}\n"
    "code,pre{font-family:monospace;font-size:13px}pre{background:#f3f4f7;padding:8px;"
    "overflow:auto}\n"
    "</style></head><body>\n"
    "<header><h1 id=\"title\">Fluid Server API</h1><div id=\"desc\"></div></header>\n"
    "<main id=\"ops\"><p>Loading <a href=\"/openapi.json\">/openapi.json</a>&hellip;</p></main>\n"
    "<script>\n"
    "function el(tag, cls, text){const e=document.createElement(tag);if(cls)e.className=cls;"
    "if(text!==undefined)e.textContent=text;return e;}\n"
    "function typeOf(s){if(!s)return '';if(s.$ref)return s.$ref.split('/').pop();"
    "if(s.oneOf)return s.oneOf.map(typeOf).join(' | ');"
    "if(s.enum)return s.enum.map(JSON.stringify).join(' | ');"
    "if(s.type==='array')return typeOf(s.items)+'[]';return s.type||'';}\n"
    "function fields(schema){const t=el('table');const h=t.insertRow();"
    "['field','type','notes'].forEach(x=>h.appendChild(el('th','',x)));"
    "const req=schema.required||[];for(const [k,v] of Object.entries(schema.properties||{})){"
    "const r=t.insertRow();r.insertCell().appendChild(el('code','',k+(req.includes(k)?' *':'')));"
    "r.insertCell().textContent=typeOf(v);const n=[];if(v.description)n.push(v.description);"
    "if(v.minimum!==undefined)n.push('min '+v.minimum);if(v.maximum!==undefined)"
    "n.push('max '+v.maximum);r.insertCell().textContent=n.join('; ');}return t;}\n"
    "function render(doc){document.getElementById('title').textContent=doc.info.title+' '+"
    "doc.info.version;document.getElementById('desc').textContent=doc.info.description;"
    "const ops=document.getElementById('ops');ops.textContent='';"
    "for(const [path,item] of Object.entries(doc.paths)){for(const [method,op] of "
    "Object.entries(item)){const d=el('details','op');const s=el('summary');"
    "s.appendChild(el('span','m '+method,method.toUpperCase()));s.appendChild(el('span','path',"
    "path));s.appendChild(el('span','',op.summary));d.appendChild(s);const b=el('div','body');"
    "const rb=op.requestBody&&op.requestBody.content;if(rb){for(const [ct,m] of "
    "Object.entries(rb)){b.appendChild(el('h4','','Request body ('+ct+')'));"
    "b.appendChild(fields(m.schema));}}b.appendChild(el('h4','','Responses'));"
    "const t=el('table');for(const [code,r] of Object.entries(op.responses)){const row="
    "t.insertRow();row.insertCell().appendChild(el('code','',code));row.insertCell()."
    "textContent=r.description;}b.appendChild(t);d.appendChild(b);ops.appendChild(d);}}}\n"
    "fetch('/openapi.json').then(r=>r.json()).then(render).catch(e=>{"
    "document.getElementById('ops').textContent='Could not load /openapi.json: '+e;});\n"
    "</script></body></html>\n";

void api_docs(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)ctx;
    (void)req;
    api_set_body(res, 200, "text/html; charset=utf-8", docs_html, sizeof docs_html - 1);
}
