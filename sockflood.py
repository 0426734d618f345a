import socket,sys,time
path=sys.argv[1]; n=int(sys.argv[2]); hold=float(sys.argv[3])
ss=[]
for i in range(n):
    s=socket.socket(socket.AF_UNIX)
    try: s.connect(path); ss.append(s)
    except Exception as e: print('fail at',i,e); break
print('opened',len(ss),flush=True); time.sleep(hold)
